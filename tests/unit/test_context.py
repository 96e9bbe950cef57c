from __future__ import annotations

import numpy as np
import pytest

from lightcurve.context import GalaxyCatalog, galactic_lb

# (ra, dec) -> (l, b), J2000 definitions of the Galactic frame's reference points.
KNOWN = [
    ((266.40498829, -28.93617776), (0.0, 0.0)),  # Galactic centre
    ((192.85948, 27.12825), (None, 90.0)),  # north Galactic pole (l undefined)
    ((12.85948, -27.12825), (None, -90.0)),  # south Galactic pole
    ((83.6330833, 22.0145), (184.5575, -5.7843)),  # Crab nebula
]


@pytest.mark.parametrize(("radec", "lb"), KNOWN)
def test_galactic_coordinates_of_known_positions(radec, lb):
    l_deg, b_deg = galactic_lb(*radec)
    assert float(b_deg) == pytest.approx(lb[1], abs=1e-3)
    if lb[0] is not None:
        dl = (float(l_deg) - lb[0] + 180.0) % 360.0 - 180.0
        assert abs(dl) < 1e-3


def test_galactic_matches_astropy_on_random_positions():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    l_deg, b_deg = galactic_lb(ra, dec)
    ref = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).galactic
    np.testing.assert_allclose(b_deg, ref.b.deg, atol=1e-9)
    np.testing.assert_allclose((l_deg - ref.l.deg + 180) % 360 - 180, 0, atol=1e-9)


def _brute_force_sep_arcsec(ra, dec, gra, gdec):
    r1, d1, r2, d2 = map(np.radians, (ra[:, None], dec[:, None], gra[None], gdec[None]))
    # Vincenty formula: accurate at all separations.
    dra = r2 - r1
    num = np.hypot(np.cos(d2) * np.sin(dra), np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(dra))
    den = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den)).min(axis=1) * 3600


def test_nearest_galaxy_equals_brute_force():
    rng = np.random.default_rng(3)
    gra, gdec = rng.uniform(0, 360, 3000), np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    # Queries both random and within arcseconds of catalogue galaxies.
    ra = np.concatenate([rng.uniform(0, 360, 200), gra[:200] + rng.normal(0, 5 / 3600, 200)]) % 360
    dec = np.clip(np.concatenate([rng.uniform(-89, 89, 200), gdec[:200] + rng.normal(0, 5 / 3600, 200)]),
                  -90, 90)
    got = GalaxyCatalog(gra, gdec).nearest_separation_arcsec(ra, dec)
    np.testing.assert_allclose(got, _brute_force_sep_arcsec(ra, dec, gra, gdec), rtol=1e-7, atol=1e-4)


def test_empty_catalogue_means_no_match():
    assert np.isinf(GalaxyCatalog([], []).nearest_separation_arcsec([10.0], [10.0])[0])


def test_bad_catalogue_is_refused():
    with pytest.raises(ValueError, match="finite"):
        GalaxyCatalog([np.nan], [0.0])
