"""What a public audience must not hear or read, kept out of every public output.

``detect`` finds personal data in one text (numbers, plates, e-mail, street addresses, protected
names); ``public`` makes a hearing's public version of the record and its redaction log from the
record and the clerk's choices in the ledger (streaming/broadcast.py applies the same finds to the
live caption feed). The record itself is never redacted.
"""
