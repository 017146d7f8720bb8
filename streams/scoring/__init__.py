"""The pure scoring core: no I/O, no faust. Shared by the live agents and ``replay``."""
