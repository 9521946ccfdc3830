"""guard.policy"""
