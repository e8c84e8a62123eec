"""The op families: each module holds one family's CPU kernels, its public
functions (re-exported by :mod:`nbops`) and their ``@overload`` for use inside
``@njit`` code.

This package is private; its module names never shadow a public function
(``nbops.softmax`` is the function, ``nbops._ops.softmax`` the module).
"""
