"""The database roles coach-db creates: the runtime (service) role, the SQL console's read-only
role."""
