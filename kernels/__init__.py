"""Hot loops written as kernels, each beside a readable reference implementation.

Dependencies flow `chaos_cli -> strates -> kernels`; nothing here imports `strates`.
The first kernel (the Mamba-2 SSD scan) arrives with Strate II.
"""
