"""guard.scan"""
