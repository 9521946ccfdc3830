"""guard.testing"""
