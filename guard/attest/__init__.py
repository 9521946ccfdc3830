"""guard.attest"""
