"""HTTP surface: the aiohttp application every role serves (`server`) and its health checks
(`health`); the agents' inbox put on it by `app.add_inbox`: sign-in (`auth`), the inbox, admin
and dashboard pages, the live socket, customers' files, and the REST API (`api`) described by
its OpenAPI document (`openapi`)."""
