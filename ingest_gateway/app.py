"""The Starlette application: routes, shared services and the producer's lifespan.

Endpoints reach the services through ``request.app.state`` with the typed accessors of their
modules (:func:`ingest_gateway.identity.authentication.authenticate`,
:func:`ingest_gateway.identity.org_context.resolve_org_context`,
:func:`ingest_gateway.producer.producer_of`). New endpoints go in
:func:`ingest_gateway.routes.routes`, each handler with its OpenAPI operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from eventpipe import metrics
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from ingest_gateway import openapi
from ingest_gateway.errors import EXCEPTION_HANDLERS
from ingest_gateway.events.body import PayloadLimits
from ingest_gateway.exports.store import ExportStoreHandle
from ingest_gateway.http_protocol import HEAD_TIMEOUT_STATE_KEY
from ingest_gateway.identity.authentication import Authenticator
from ingest_gateway.identity.csrf import TrustedOrigins
from ingest_gateway.identity.cvat_provider import CvatIdentityProvider
from ingest_gateway.identity.org_context import OrgResolver
from ingest_gateway.limits.in_memory import LoginThrottle, TenantRateLimiter
from ingest_gateway.limits.in_redis import RedisLoginThrottle, RedisTenantRateLimiter
from ingest_gateway.limits.interface import Throttle
from ingest_gateway.limits.redis_client import RedisClient
from ingest_gateway.producer import EventProducer
from ingest_gateway.request_middleware import RequestMiddleware
from ingest_gateway.routes import routes


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, float]]:
        # Each close is registered as soon as its resource is open, so a start step that raises,
        # or a close that raises, still closes everything opened before it.
        async with AsyncExitStack() as stack:
            stack.callback(metrics.process_exiting)
            stack.callback(identity.close)
            if cvat is not None:
                stack.push_async_callback(cvat.close)
            if shared is not None:
                stack.push_async_callback(shared.close)
            # A PostgreSQL schema older than this code stops the start with a message naming
            # `eventpipe migrate`, instead of failing requests one by one.
            await asyncio.to_thread(identity.check_schema)
            export_store = ExportStoreHandle(settings)
            app.state.export_store = export_store
            export_store.start()
            stack.push_async_callback(export_store.stop)
            producer = EventProducer(settings)
            app.state.producer = producer
            await producer.start()
            stack.push_async_callback(producer.stop)
            # Lifespan state reaches uvicorn's protocol instances, which enforce this deadline.
            yield {HEAD_TIMEOUT_STATE_KEY: settings.header_read_timeout_seconds}

    served = routes()
    paths = frozenset(route.path for route in served if isinstance(route, Route))
    app = Starlette(
        routes=served,
        middleware=[Middleware(RequestMiddleware, routes=paths)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # JWTs first, then CVAT when configured, else the store (docs/security.md).
    cvat = CvatIdentityProvider.from_settings(settings)
    app.state.cvat = cvat
    # Encoded before the identity store opens its connections, and before the first request: a
    # route that declares no operation stops the app from being made.
    app.state.schema = openapi.encoded_document(cvat is not None)
    # A setting it refuses, too, stops the start before any connection is open.
    app.state.trusted_origins = TrustedOrigins.from_settings(settings)
    identity = IdentityStore.from_settings(settings)
    # Limits in Redis when configured: exact across replicas.
    shared = RedisClient.from_settings(settings)
    if shared is None:
        throttle: Throttle = LoginThrottle(
            settings.login_failure_limit, settings.login_backoff_seconds
        )
        app.state.tenant_limiter = TenantRateLimiter.from_settings(settings)
    else:
        throttle = RedisLoginThrottle(
            shared, settings.login_failure_limit, settings.login_backoff_seconds
        )
        app.state.tenant_limiter = RedisTenantRateLimiter.from_settings(settings, shared)
    app.state.authenticator = Authenticator.from_settings(identity, settings, throttle, cvat)
    app.state.org_resolver = OrgResolver(identity, settings.auth_cache_seconds)
    app.state.payload_limits = PayloadLimits.from_settings(settings)
    return app
