"""Where things are: Galactic and extragalactic sky positions, host offsets and the galaxy catalogue.

Variable stars belong to the Milky Way: most lie within a few degrees of the Galactic plane (a
Laplace distribution in latitude, scale height by type) and towards the inner Galaxy, while nearby
and halo stars (RR Lyrae) are spread over the whole sky. Galaxies, and so supernovae and AGN, are
seen through the Milky Way's dust: a GLADE-like catalogue is nearly empty within ~10 deg of the
plane (the zone of avoidance) and its completeness falls with distance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from lightcurve.context import galactic_lb

__all__ = [
    "catalogue_completeness",
    "draw_extragalactic_positions",
    "draw_galactic_positions",
    "draw_galaxy_catalogue",
    "galactic_extinction_mag",
    "galactic_to_icrs",
    "offset_position",
    "zone_of_avoidance_acceptance",
]

FloatArray = NDArray[np.float64]
ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0


def galactic_to_icrs(l_deg: FloatArray, b_deg: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ICRS (ra, dec) in degrees of Galactic (l, b) positions, via astropy."""
    import astropy.units as u
    from astropy.coordinates import ICRS, Galactic

    icrs = Galactic(l=np.asarray(l_deg) * u.deg, b=np.asarray(b_deg) * u.deg).transform_to(ICRS())
    return icrs.ra.deg % 360.0, icrs.dec.deg


def zone_of_avoidance_acceptance(
    b_deg: FloatArray, centre_deg: float = 10.0, width_deg: float = 2.5
) -> FloatArray:
    """Fraction of galaxies (and extragalactic transients) that survive Galactic dust at latitude b.

    Examples
    --------
    >>> [round(float(x), 2) for x in zone_of_avoidance_acceptance(np.array([0.0, 10.0, 30.0]))]
    [0.02, 0.5, 1.0]
    """
    return 1.0 / (1.0 + np.exp(-(np.abs(b_deg) - centre_deg) / width_deg))


def galactic_extinction_mag(b_deg: FloatArray) -> FloatArray:
    """L-band extinction towards latitude b (cosecant law, 0.05 mag at the poles, capped at 3 mag)."""
    return np.minimum(0.05 / np.maximum(np.sin(np.radians(np.abs(b_deg))), 1e-3), 3.0)


def catalogue_completeness(distance_mpc: FloatArray) -> FloatArray:
    """Probability that a transient's host galaxy at this distance is in the GLADE-like catalogue
    (complete nearby, half complete at 500 Mpc; dwarf hosts are missing at any distance)."""
    return 0.95 / (1.0 + (np.asarray(distance_mpc) / 500.0) ** 2.5)


def _draw_until(n: int, draw: Callable[[int], tuple[FloatArray, ...]]) -> tuple[FloatArray, ...]:
    """Rejection sampling: call ``draw(k)`` (which returns only accepted rows) until ``n`` rows exist."""
    parts: list[tuple[FloatArray, ...]] = []
    have = 0
    while have < n:
        got = draw(max(64, int(1.3 * (n - have)) + 16))
        parts.append(got)
        have += got[0].size
    return tuple(np.concatenate([p[i] for p in parts])[:n] for i in range(len(parts[0])))


def draw_galactic_positions(
    rng: np.random.Generator,
    scale_height_deg: FloatArray,
    isotropic_fraction: FloatArray,
    dec_min_deg: float,
) -> tuple[FloatArray, FloatArray]:
    """Positions of Galactic objects, one per entry of the per-object parameter arrays.

    A fraction ``isotropic_fraction`` is spread uniformly over the sphere (nearby and halo stars);
    the rest follow the disc: latitude Laplace-distributed with ``scale_height_deg``, longitude
    concentrated towards the Galactic centre (density 1 + 0.6 cos l). Only dec >= ``dec_min_deg``
    (what the survey can see) is kept: rejected positions are redrawn with the same parameters.
    """
    n = scale_height_deg.size
    ra = np.empty(n)
    dec = np.empty(n)
    todo = np.arange(n)
    while todo.size:  # rejection: redraw whatever fails the longitude density or the dec limit
        k = todo.size
        iso = rng.random(k) < isotropic_fraction[todo]
        l_deg = rng.uniform(0.0, 360.0, k)
        keep_l = iso | (rng.random(k) < (1.0 + 0.6 * np.cos(np.radians(l_deg))) / 1.6)
        b_disc = rng.laplace(0.0, scale_height_deg[todo])
        b_iso = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, k)))
        b_deg = np.clip(np.where(iso, b_iso, b_disc), -89.999, 89.999)
        r, d = galactic_to_icrs(l_deg, b_deg)
        ok = keep_l & (d >= dec_min_deg)
        ra[todo[ok]], dec[todo[ok]] = r[ok], d[ok]
        todo = todo[~ok]
    return ra, dec


def draw_extragalactic_positions(
    rng: np.random.Generator, n: int, dec_min_deg: float = -90.0
) -> tuple[FloatArray, FloatArray]:
    """Isotropic positions thinned by the zone of avoidance, dec >= ``dec_min_deg``."""
    sin_min = np.sin(np.radians(dec_min_deg))

    def draw(k: int) -> tuple[FloatArray, FloatArray]:
        ra = rng.uniform(0.0, 360.0, k)
        dec = np.degrees(np.arcsin(rng.uniform(sin_min, 1.0, k)))
        _, b = galactic_lb(ra, dec)
        keep = rng.random(k) < zone_of_avoidance_acceptance(b)
        return ra[keep], dec[keep]

    ra, dec = _draw_until(n, draw)
    return ra, dec


def offset_position(
    ra_deg: FloatArray, dec_deg: FloatArray, sep_arcsec: FloatArray, position_angle_rad: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Move each position by ``sep_arcsec`` towards ``position_angle_rad`` (east of north), exactly
    on the sphere."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    rho = np.asarray(sep_arcsec) / ARCSEC_PER_RAD
    sin_dec2 = np.sin(dec) * np.cos(rho) + np.cos(dec) * np.sin(rho) * np.cos(position_angle_rad)
    dec2 = np.arcsin(np.clip(sin_dec2, -1.0, 1.0))
    ra2 = ra + np.arctan2(
        np.sin(position_angle_rad) * np.sin(rho) * np.cos(dec), np.cos(rho) - np.sin(dec) * sin_dec2
    )
    return np.degrees(ra2) % 360.0, np.degrees(dec2)


def draw_galaxy_catalogue(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A GLADE-like all-sky background catalogue: (ra, dec, distance_mpc).

    Galaxies avoid the Galactic plane; distances follow a magnitude-limited catalogue (rising as
    d^2 nearby, thinning with the catalogue's completeness).
    """
    ra, dec = draw_extragalactic_positions(rng, n)

    def draw_distance(k: int) -> tuple[FloatArray]:
        d = 600.0 * rng.random(k) ** (1.0 / 3.0)  # uniform in volume out to 600 Mpc
        return (d[rng.random(k) < catalogue_completeness(d)],)

    (distance,) = _draw_until(n, draw_distance)
    return ra, dec, np.maximum(distance, 1.0)
