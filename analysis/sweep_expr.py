"""Safe arithmetic expressions for derived parameters (`=compute.rows * 2`) and constraints
(`area_mm2 <= 4`): a whitelist of AST nodes and functions, bounded sizes, no attribute access
beyond dotted names."""

from __future__ import annotations

import ast
import math
import operator
from typing import Any


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPOPS = {ast.LtE: operator.le, ast.Lt: operator.lt, ast.GtE: operator.ge, ast.Gt: operator.gt,
           ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS = {"min": min, "max": max, "int": int, "round": round, "float": float, "abs": abs,
          "ceil": math.ceil, "floor": math.floor, "log2": math.log2, "sqrt": math.sqrt}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


MAX_EXPR_CHARS = 1000        # an expression longer than this is not a design rule
MAX_EXPR_INT = 2 ** 256       # no intermediate integer beyond this (no 9**9**9)
MAX_EXPONENT = 256            # `**` with a larger exponent is refused before it is computed


class ExprError(ValueError):
    """An expression that cannot be evaluated (division by zero, a number too large, a string in arithmetic)."""


def _number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"arithmetic needs numbers, got {str(v)[:40]!r}")
    return v


def _checked(v):
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_EXPR_INT:
        raise ExprError("an intermediate value exceeds 2**256")
    if isinstance(v, float) and not math.isfinite(v):
        raise ExprError("the value is not a finite number")
    return v


def _power(a, b):
    if abs(b) > MAX_EXPONENT:
        raise ExprError(f"exponent {b} is larger than {MAX_EXPONENT}")
    if abs(a) > MAX_EXPR_INT:
        raise ExprError("the base exceeds 2**256")
    if isinstance(a, int) and isinstance(b, int) and b >= 0 and abs(a) > 1 and b * math.log2(abs(a)) > 256:
        raise ExprError(f"{a} ** {b} exceeds 2**256")
    return a ** b


class Expr:
    """A small, bounded arithmetic expression over dotted names: numbers only (no string
    repetition), `**` with a bounded exponent, no value beyond 2**256, a few math functions;
    any failure is an `ExprError` (a ValueError)."""

    def __init__(self, text: str):
        self.text = text.strip()
        if len(self.text) > MAX_EXPR_CHARS:
            raise ValueError(f"expression is {len(self.text):,} characters long, over the limit of {MAX_EXPR_CHARS}")
        try:
            self.tree = ast.parse(self.text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ValueError(f"cannot parse expression '{self.text[:80]}'") from None
        self.names: list[str] = []
        self._collect(self.tree)

    def _collect(self, node):
        name = _dotted(node)
        if name is not None:
            if name not in self.names:
                self.names.append(name)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._collect(node.left)
            self._collect(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._collect(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and not node.keywords:
            for a in node.args:
                self._collect(a)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
            self._collect(node.left)
            self._collect(node.comparators[0])
        else:
            raise ValueError(f"unsupported syntax in expression '{self.text[:80]}' (use + - * / // ** %, "
                             f"min/max/ceil/floor/log2/sqrt, and one comparison)")

    def evaluate(self, env: dict[str, Any]):
        try:
            return self._eval(self.tree, env)
        except ExprError as exc:
            raise ExprError(f"'{self.text[:80]}': {exc}") from None
        except ZeroDivisionError:
            raise ExprError(f"'{self.text[:80]}' divides by zero") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ExprError(f"'{self.text[:80]}' cannot be evaluated ({exc})") from None

    def _eval(self, node, env):
        name = _dotted(node)
        if name is not None:
            return env[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            a, b = _number(self._eval(node.left, env)), _number(self._eval(node.right, env))
            op = type(node.op)
            return _checked(_power(a, b) if op is ast.Pow else _BINOPS[op](a, b))
        if isinstance(node, ast.UnaryOp):
            v = _number(self._eval(node.operand, env))
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            return _checked(_FUNCS[node.func.id](*(_number(self._eval(a, env)) for a in node.args)))
        if isinstance(node, ast.Compare):
            return _CMPOPS[type(node.ops[0])](self._eval(node.left, env), self._eval(node.comparators[0], env))
        raise ValueError(self.text)



__all__ = ["Expr", "ExprError", "MAX_EXPR_CHARS", "MAX_EXPR_INT", "MAX_EXPONENT"]
