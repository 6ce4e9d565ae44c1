"""Reporting: the typed run summary, the HTML/PDF report, its plots and the report server."""
