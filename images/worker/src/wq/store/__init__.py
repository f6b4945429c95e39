"""Redis: key names (keys), the layout of a run's data (layout), connections that ride out an
outage (connection), the Lua scripts (scripts, lua/), and the run's operations by caller
(queue: leases, seeding, appends, reading and admin, each on one handle). The only layer that
talks to Redis."""
