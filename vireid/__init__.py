"""vireid: pose estimation as an auxiliary learning task for visible-infrared person ReID.

Layout (bottom-up): ``vireid.pose`` (LIP joint schema, heatmaps, the GCCPM estimator),
``vireid.data`` (dataset manifests, protocols, shard format, datasets), ``vireid.model``
and ``vireid.losses`` (the paper's Fig. 2 and eqs. 1-21), ``vireid.evaluation`` and
``vireid.engine``, and the CLIs in ``vireid.cli``. The offline stage lives in the sibling
package ``pipeline`` and imports ``vireid``, never the reverse.
"""

__version__ = "0.1.0"
