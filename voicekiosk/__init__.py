"""voicekiosk: a talking OpenAI Realtime agent on any screen, over WebRTC."""

__version__ = "0.1.0"
