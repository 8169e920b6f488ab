"""The open workload model: requests arrive at a set rate, whatever the API's speed.

``schedule`` (the arrival times: rate stages, Poisson or uniform, split over processes) is pure;
``dispatcher`` hands each arrival to an idle virtual user and ``user`` is that user, both Locust
glue. What such a run counts of its arrivals is judged with the rest: ``verdict.workload``.
"""
