"""Sources: where events come from (generated datasets today; mail, calendars and CRM next)."""
