"""The tunnel providers: ssh, ngrok, cloudflared, manual."""
