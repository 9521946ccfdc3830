"""guard.admission"""
