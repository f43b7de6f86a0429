"""One module per Visma system, each behind the seam in bot/visma/base.py."""

from __future__ import annotations

import httpx

from bot.domain.types import AccountingSystem
from bot.settings import Settings
from bot.visma.base import System
from bot.visma.business_nxt import BusinessNxt
from bot.visma.eaccounting import EAccounting
from bot.visma.visma_erp import VismaErp
from bot.visma.visma_net import VismaNet


def build_systems(settings: Settings, http: httpx.AsyncClient) -> dict[AccountingSystem, System]:
    """The system modules this installation can talk to, over one shared HTTP client (the Visma Connect
    systems only when the firm's Visma Connect client is configured)."""
    systems: dict[AccountingSystem, System] = {
        AccountingSystem.EACCOUNTING: EAccounting(
            http,
            identity_url=str(settings.eaccounting_identity_url),
            api_url=str(settings.eaccounting_api_url),
            client_id=settings.eaccounting_client_id,
            client_secret=settings.eaccounting_client_secret.get_secret_value(),
            rate_limit=settings.eaccounting_rate_limit,
            rate_window=settings.eaccounting_rate_window_seconds,
            page_size=settings.visma_page_size,
        ),
    }
    if settings.visma_client_id and settings.visma_client_secret:
        secret = settings.visma_client_secret.get_secret_value()
        # Visma.net Financials (by Tenant ID) and Visma ERP (by consent) read the same ERP API.
        for module in (VismaNet, VismaErp):
            systems[module.system] = module(
                http,
                connect_url=str(settings.visma_connect_url),
                api_url=str(settings.visma_net_api_url),
                client_id=settings.visma_client_id,
                client_secret=secret,
                rate_limit=settings.visma_net_rate_limit_per_hour,
                page_size=settings.visma_page_size,
            )
        systems[AccountingSystem.BUSINESS_NXT] = BusinessNxt(
            http,
            token_url=str(settings.business_nxt_token_url),
            api_url=str(settings.business_nxt_api_url).rstrip("/"),
            client_id=settings.visma_client_id,
            client_secret=secret,
            page_size=settings.visma_page_size,
        )
    return systems
