"""Seeding a run: item sources and formats, the seeder, and open runs that take appends."""
