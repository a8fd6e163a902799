"""``GET /v1/pricing``: the gateway's price table in the reference API's shape (public)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import GatewayDep
from agentmark_gateway.pricing import price_table

router = APIRouter(tags=["Meta"], route_class=ApiRoute)

# The table only changes when the operator restarts with new overrides.
CACHE_CONTROL = "public, max-age=86400"
# The table is in USD per million tokens; the reference API answers per thousand.
_PER_THOUSAND = 1_000


@router.get(
    "/v1/pricing",
    summary="Model prices",
    description="Every model the gateway prices costs with (the shipped table under "
    "`AGENTMARK_MODEL_PRICES`), as `{model: {promptPrice, completionPrice}}` in USD per "
    "1,000 tokens, without envelope. Public, cacheable for a day.",
    response_model=dict[str, dict[str, float]],
)
async def pricing(gateway: GatewayDep) -> JSONResponse:
    table = price_table(gateway.settings.model_prices)
    body = {
        model: {
            "promptPrice": price.input / _PER_THOUSAND,
            "completionPrice": price.output / _PER_THOUSAND,
        }
        for model, price in sorted(table.prices.items())
    }
    return JSONResponse(body, headers={"Cache-Control": CACHE_CONTROL})
