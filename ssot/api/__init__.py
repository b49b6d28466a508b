"""The DRF API of SPEC section 7: tasks, messages, audit, sync (agents and escalations: monitoring)."""
