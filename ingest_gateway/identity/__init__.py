"""Who is calling, in which organization, and what they may do.

``authentication`` checks the credentials (the local store, a JWT from ``jwt_tokens``, or CVAT
through ``cvat_provider`` with the credentials of ``cvat_credentials`` and the CSRF check of
``csrf``); ``org_selection`` reads which organization a request names and ``org_context``
resolves it; ``permissions`` holds CVAT's rules of who may do what."""
