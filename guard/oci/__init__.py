"""guard.oci"""
