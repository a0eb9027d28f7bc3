"""Recognition passes: each finds one kind of block in a bound graph and claims its nodes.

Passes run in the order of :data:`mapping.recognize.PASSES`; each is a small function ``run(ctx)`` over a
:class:`mapping.passes.context.Context`, testable alone.
"""
