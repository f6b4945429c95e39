"""Redis: key names (keys), the layout of a run's data (layout), connections that ride out an
outage (connection), the Lua scripts (scripts, lua/), and the run's operations (queue). The
only layer that talks to Redis."""
