"""guard.signing"""
