"""Risk: the gate every order passes (allow, or deny with a reason), the circuit breakers, the full risk engine
(pre-trade checks, trading states, auto-close/auto-stop, audit log) and their one config."""

from pivotal.risk.audit import AuditLog, AuditLogBusy, read_audit
from pivotal.risk.config import CIRCUIT_BREAKER_DEFAULTS, RiskConfig
from pivotal.risk.engine import RULES, RiskEngine, TradingState, Trip
from pivotal.risk.gate import Decision, DefaultRiskGate, RiskGate
from pivotal.risk.managed import RiskManaged
from pivotal.risk.pretrade import MarketRules

__all__ = [
    "CIRCUIT_BREAKER_DEFAULTS", "RULES", "AuditLog", "AuditLogBusy", "Decision", "DefaultRiskGate", "MarketRules",
    "RiskConfig", "RiskEngine", "RiskGate", "RiskManaged", "TradingState", "Trip", "read_audit",
]  # fmt: skip
