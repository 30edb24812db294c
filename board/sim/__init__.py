"""The simulated board: a faithful stand-in for a Pi with a line HAT.

See :class:`board.sim.board.SimBoard`.
"""
