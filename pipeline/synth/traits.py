"""Stable appearance of one synthetic identity: build, clothing, carried object.

Colours are BGR (OpenCV order) floats in [0, 1]. The infrared ``*_ir`` grey levels
of garments follow their dye the way SYSU-MM01's near-infrared cameras see it: one
fixed function of the colour (:func:`nir_level`), the same for every identity, plus a
little per-garment variation. It is non-monotone in brightness and hue, so grey-level
statistics do not carry across modalities (its correlation with luminance is about 0:
a grey histogram cannot match an RGB image to an IR one), but a network can learn it
in its modality-specific stem, as it must on the real data. Shape, build, clothing
pattern and carried objects carry over as well. Skin and hair keep their own levels
(skin is bright under NIR light).

With ``ir_levels='random'`` (``vireid-prep synth --ir-levels random``) the garments' levels
are drawn per identity independently of their colours: no colour -> level map exists to
learn, and only geometry, pattern and carried items are shared across modalities.
"""
from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

Colour = Tuple[float, float, float]

PATTERNS: Tuple[str, ...] = ("plain", "hstripes", "vstripes", "diagonal", "checks", "dots")
BOTTOMS: Tuple[str, ...] = ("trousers", "shorts", "skirt")
BAGS: Tuple[str, ...] = ("none", "backpack", "shoulder", "handbag")


@dataclass(frozen=True)
class Build:
    """Body proportions in units of body height (top of head to soles = 1)."""

    head_r: float        # head radius
    shoulder: float      # half shoulder width
    hip: float           # half hip width (joint spacing)
    depth: float         # half torso depth (its width seen from the side)
    leg: float           # hip-to-sole length
    arm: float           # arm length scale
    limb: float          # limb thickness scale


@dataclass(frozen=True)
class Traits:
    """Everything that stays the same across one identity's images."""

    build: Build
    female: bool
    skin: Colour
    hair: Colour
    hair_long: bool
    top: Colour
    top2: Colour              # the pattern's second colour
    pattern: str              # one of PATTERNS
    pattern_period: float     # in units of body height
    pattern_angle: float      # radians (diagonal stripes)
    long_sleeves: bool
    bottom: Colour
    bottom_kind: str          # one of BOTTOMS
    shoes: Colour
    bag: str                  # one of BAGS
    bag_colour: Colour
    bag_side: int             # +1: the person's left, -1: right
    # thermal grey levels in [0, 1] (skin warm; clothing by a per-identity emissivity)
    skin_ir: float
    hair_ir: float
    top_ir: float
    top2_ir: float
    bottom_ir: float
    shoes_ir: float
    bag_ir: float


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (b, g, r)


def clothing_colour(rng: np.random.Generator) -> Colour:
    """A plausible garment colour: about half neutrals (black, grey, white, navy, beige)."""
    kind = rng.random()
    if kind < 0.25:      # black .. white
        v = float(rng.choice([rng.uniform(0.08, 0.25), rng.uniform(0.35, 0.65), rng.uniform(0.8, 0.95)]))
        return _hsv(rng.random(), rng.uniform(0.0, 0.08), v)
    if kind < 0.45:      # navy, beige, khaki, brown
        h = float(rng.choice([0.62, 0.1, 0.13, 0.07])) + rng.normal(0, 0.02)
        return _hsv(h, rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.75))
    return _hsv(rng.random(), rng.uniform(0.45, 0.95), rng.uniform(0.35, 0.95))


def skin_colour(rng: np.random.Generator) -> Colour:
    return _hsv(rng.uniform(0.03, 0.09), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.92))


def hair_colour(rng: np.random.Generator) -> Colour:
    if rng.random() < 0.8:
        return _hsv(rng.uniform(0.02, 0.1), rng.uniform(0.2, 0.6), rng.uniform(0.05, 0.22))
    return _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))


def nir_level(colour: Colour) -> float:
    """Near-infrared grey level of a dye of BGR ``colour``, in [0.05, 0.95].

    Neutral colours go by brightness, non-monotonically (mid greys bright, black and
    white darker); saturated ones by hue. The phases make the level uncorrelated with
    luminance over :func:`clothing_colour`'s draws (a test checks it).
    """
    b, g, r = colour
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    w = min(1.0, 1.6 * s)
    neutral = 0.5 + 0.33 * math.cos(2 * math.pi * (v + 0.55))
    chroma = 0.5 + 0.38 * math.sin(2 * math.pi * h + 0.52)
    return float(np.clip((1 - w) * neutral + w * chroma, 0.05, 0.95))


def _garment_ir(rng: np.random.Generator, colour: Colour) -> float:
    """An identity's garment level: :func:`nir_level` with a little fabric variation."""
    return float(np.clip(nir_level(colour) + rng.normal(0.0, 0.04), 0.05, 0.95))


def _contrasting(rng: np.random.Generator, base: Colour) -> Colour:
    """A second pattern colour clearly different in brightness from ``base``."""
    lum = 0.114 * base[0] + 0.587 * base[1] + 0.299 * base[2]
    other = clothing_colour(rng)
    o_lum = 0.114 * other[0] + 0.587 * other[1] + 0.299 * other[2]
    if abs(o_lum - lum) < 0.3:
        target = lum - 0.4 if lum > 0.5 else lum + 0.4
        scale = max(target, 0.05) / max(o_lum, 0.05)
        other = tuple(float(np.clip(c * scale, 0.0, 1.0)) for c in other)  # type: ignore[assignment]
    return other


#: ``ir_levels`` modes of :func:`sample_traits`
IR_LEVELS = ("dye", "random")


def sample_traits(rng: np.random.Generator, ir_levels: str = "dye") -> Traits:
    """Draw one identity's appearance.

    ``ir_levels`` sets the garments' infrared grey levels:

    * ``'dye'`` (default): :func:`nir_level` of each garment's colour, one fixed function for
      every identity -- a network can learn the colour -> level map as a cross-modality
      shortcut, which real infrared does not offer;
    * ``'random'``: per identity and garment, drawn uniformly in [0.05, 0.95] independently
      of its colour, so that what RGB and IR images of one identity share is geometry
      (build, pose), garment pattern and carried items only. Drawn after every other trait,
      so the same seed gives the same person (colours, build, bag) in both modes.
    """
    if ir_levels not in IR_LEVELS:
        raise ValueError(f"ir_levels must be one of {', '.join(IR_LEVELS)}, got {ir_levels!r}")
    female = bool(rng.random() < 0.45)
    build = Build(
        head_r=rng.uniform(0.058, 0.072),
        shoulder=rng.uniform(0.085, 0.12) * (0.9 if female else 1.0),
        hip=rng.uniform(0.045, 0.065),
        depth=rng.uniform(0.045, 0.07),
        leg=rng.uniform(0.45, 0.5),
        arm=rng.uniform(0.92, 1.06),
        limb=rng.uniform(0.8, 1.3),
    )
    top = clothing_colour(rng)
    pattern = str(rng.choice(PATTERNS, p=[0.35, 0.2, 0.1, 0.1, 0.15, 0.1]))
    bottom_kind = str(rng.choice(BOTTOMS, p=[0.65, 0.15, 0.2] if female else [0.8, 0.2, 0.0]))
    bag = str(rng.choice(BAGS, p=[0.4, 0.3, 0.2, 0.1]))
    dark_or_light = float(rng.choice([rng.uniform(0.05, 0.25), rng.uniform(0.7, 0.95)]))
    top2 = _contrasting(rng, top)
    bottom = clothing_colour(rng)
    shoes = _hsv(rng.random(), rng.uniform(0, 0.3), dark_or_light)
    bag_colour = clothing_colour(rng)
    top_ir, top2_ir = _garment_ir(rng, top), _garment_ir(rng, top2)
    if abs(top2_ir - top_ir) < 0.15:   # the pattern stays visible in infrared
        top2_ir = float(np.clip(top_ir + (0.2 if top_ir < 0.5 else -0.2), 0.05, 0.95))
    traits = Traits(
        build=build, female=female, skin=skin_colour(rng), hair=hair_colour(rng),
        hair_long=bool(rng.random() < (0.6 if female else 0.08)),
        top=top, top2=top2, pattern=pattern,
        pattern_period=rng.uniform(0.045, 0.1), pattern_angle=rng.uniform(0.5, 1.1) * rng.choice([-1, 1]),
        long_sleeves=bool(rng.random() < 0.55),
        bottom=bottom, bottom_kind=bottom_kind,
        shoes=shoes,
        bag=bag, bag_colour=bag_colour, bag_side=int(rng.choice([-1, 1])),
        skin_ir=rng.uniform(0.82, 0.97), hair_ir=rng.uniform(0.35, 0.6),
        top_ir=top_ir, top2_ir=top2_ir,
        bottom_ir=_garment_ir(rng, bottom), shoes_ir=_garment_ir(rng, shoes), bag_ir=_garment_ir(rng, bag_colour),
    )
    if ir_levels == "random":
        traits = _random_ir(rng, traits)
    return traits


def _random_ir(rng: np.random.Generator, traits: Traits) -> Traits:
    """``traits`` with garment infrared levels independent of the garments' colours."""
    top_ir, top2_ir, bottom_ir, shoes_ir, bag_ir = (float(v) for v in rng.uniform(0.05, 0.95, size=5))
    if abs(top2_ir - top_ir) < 0.15:   # the pattern stays visible in infrared
        top2_ir = float(np.clip(top_ir + (0.2 if top_ir < 0.5 else -0.2), 0.05, 0.95))
    return dataclasses.replace(traits, top_ir=top_ir, top2_ir=top2_ir, bottom_ir=bottom_ir,
                               shoes_ir=shoes_ir, bag_ir=bag_ir)
