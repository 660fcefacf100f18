"""Team mode: one relay answers HubSpot for a whole call centre (issue 17), on PostgreSQL and S3-compatible
storage. This package is the relay's side; it needs the ``relay`` extra (psycopg, boto3), which the desk's
bundle leaves out, so its modules import those only where they are used."""
