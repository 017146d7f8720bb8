"""Identity: which account and which side (seller or buyer) each participant is on."""
