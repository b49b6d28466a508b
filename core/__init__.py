"""What every app shares below ssot: errors and their HTTP answers, the API's base views and helpers."""
