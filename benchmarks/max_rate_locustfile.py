"""Unpaced FastHttpUser GETs of "/": as fast as one locust process can go."""

from locust import FastHttpUser, constant, task


class MaxRate(FastHttpUser):
    wait_time = constant(0)
    max_retries = 0

    @task
    def get(self) -> None:
        self.client.get("/", name="/")
