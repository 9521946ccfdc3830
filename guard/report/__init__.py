"""guard.report"""
