"""A kombu transport module that cannot be imported: it needs a package that is not installed.

That is how a broken install looks to a producer (kombu's Redis transport imports
``packaging``, which only ``celery[redis]`` brings). Tests point ``broker_transport`` here.
"""

import bgtask_test_package_that_is_not_installed  # noqa: F401
