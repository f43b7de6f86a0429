"""The team channel's daily digest: the message (views), its chart (chart) and how both are delivered (deliver)."""
