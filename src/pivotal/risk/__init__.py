"""Risk: the gate every order passes (allow, or deny with a reason), the circuit breakers and their one config."""

from pivotal.risk.config import CIRCUIT_BREAKER_DEFAULTS, RiskConfig
from pivotal.risk.gate import Decision, DefaultRiskGate, RiskGate

__all__ = ["CIRCUIT_BREAKER_DEFAULTS", "Decision", "DefaultRiskGate", "RiskConfig", "RiskGate"]
