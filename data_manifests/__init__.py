"""data_manifests: the dataset specifications (one YAML per dataset), read by :mod:`vireid.data.spec`.

Package data, so a wheel carries them; :data:`MANIFESTS_DIR` is their folder wherever the
package is installed."""
from pathlib import Path

#: The folder of the dataset spec YAMLs.
MANIFESTS_DIR = Path(__file__).resolve().parent
