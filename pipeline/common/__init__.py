"""Helpers below every other package of the library (seeding): they import nothing from pipeline/."""
