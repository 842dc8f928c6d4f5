"""Deliberately broken Bitrix24 event handlers, one flaw each, for testing the contract itself."""

from .handlers import FLAWS, ContractHandler, Installation

__all__ = ["FLAWS", "ContractHandler", "Installation"]
