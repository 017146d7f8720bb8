"""Rapport: buyer-seller relationship health as a stream.

The package layout follows the flow: ``sources`` (files and generators in),
``identity`` (who is on which account and side), ``scoring`` (the pure core),
``sinks`` (the warehouse), and ``runtime`` (broker, faust app, orchestration).
"""

__version__ = "0.1.0"
