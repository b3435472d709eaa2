"""The paper's method: the attack it defends against (poison, triggers), MESA's generator and MINE,
the search, the pixel-SGD baseline, the defenses, detection and the census of valid triggers."""
