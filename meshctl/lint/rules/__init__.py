"""One module per concern; each defines `RULE` (see meshctl.lint.context.Rule). Listed in meshctl.lint.registry."""
