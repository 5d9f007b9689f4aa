"""`coach-db adopt`: bring a database made by the Prisma package under coach-db, nothing lost."""
