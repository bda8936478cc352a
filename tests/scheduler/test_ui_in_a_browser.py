"""imagepipe's pages inside the Airflow UI of a running Airflow: every page refused to anonymous requests and served
to logged-in users; then in a real browser (Debian's chromium, driven through chromium-driver): log in, open Models
from the navigation bar, a version's report with its pictures and gallery of test images loaded, a run's Model run
tab, a viewer's Models page without a rollback form, a target that was never champion refused on the form with the
rollback job's line, a user who may read one dataset's DAGs seeing that dataset alone, an unknown page answered in
Airflow's frame, a rollback a viewer may not post and an admin posts from the Models page, which the rollback DAG
carries out as that user and the history then shows, and the pipeline's own trigger form refusing what its job
refuses. One stack serves it all, with an auth manager that decides per DAG for one user (auth_manager/).
Screenshots of each page are written to build/test-artifacts/ui/ (IMAGEPIPE_TEST_ARTIFACTS
elsewhere). (The pages' content, in detail: tests/ui.)"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from ui.model_records import FOREST, build

from imagepipe.errors import InputError

from .airflow_stack import PROJECT, AirflowStack, s3_env
from .auth_manager.per_dataset_auth import DATASET, READER

pytestmark = pytest.mark.scheduler

ROLLBACK_DAG = "image_classifier_rollback"
ROLLBACK_FORM = f"/imagepipe/dags/{ROLLBACK_DAG}/runs"
# The default dataset's model's rollback form on the Models page (the holiday dataset's model has its own).
MODEL_ROLLBACK_FORM = f"form.rollback[action='{ROLLBACK_FORM}']"
PIPELINE_DAG = "image_classifier_pipeline"
ARTIFACTS = Path(os.environ.get("IMAGEPIPE_TEST_ARTIFACTS", PROJECT / "build" / "test-artifacts")) / "ui"
WAIT = 120  # seconds: the Airflow UI's first load compiles nothing, but two cores share it with the whole stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    (root / "datasets.toml").write_text(f'[datasets.{DATASET}]\nsource_uri = "s3://my-photos/{DATASET}/"\n')
    settings = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,viewer:viewer,{READER}:viewer",
                "AIRFLOW__CORE__AUTH_MANAGER": "per_dataset_auth.PerDatasetAuthManager",
                "PYTHONPATH": str(Path(__file__).parent / "auth_manager"),
                "IMAGEPIPE_DATASETS_FILE": str(root / "datasets.toml")}
    with AirflowStack(root, s3_env(), extra_env=settings) as stack:
        stack.wait_for_dag(ROLLBACK_DAG)
        stack.wait_for_dag(PIPELINE_DAG)
        stack.wait_for_dag(f"{PIPELINE_DAG}__{DATASET}")
        yield stack


@pytest.fixture(scope="module")
def records(stack):
    """The runs' records in the stack's lake (the default dataset's and the holiday dataset's), and an Airflow run
    (queued: the DAG stays paused) for run 2."""
    build(str(stack.lake), dataset=DATASET)
    records = build(str(stack.lake))
    stack.request("POST", f"/api/v2/dags/{PIPELINE_DAG}/dagRuns",
                  {"logical_date": None, "dag_run_id": records.run(2), "conf": {}})
    return records


def fetch(stack, method: str, path: str, session: str | None = None, form: dict | None = None) -> tuple[int, str]:
    """Status and text of a page, as a browser asks for it: with the session cookie when logged in, and a form post
    naming the page's own origin."""
    headers = {"Origin": stack.url}
    if session is not None:
        headers["Cookie"] = f"_token={session}"
    data = None
    if form is not None:
        data = "&".join(f"{name}={quote(value)}" for name, value in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_every_page_is_refused_to_anonymous_requests_and_served_to_a_logged_in_user(stack, records):
    version = "/imagepipe/models/image_classifier/versions/1"
    pages = ["/imagepipe/", "/imagepipe/models", "/imagepipe/models/image_classifier/versions",
             "/imagepipe/models/image_classifier/history", version, f"{version}/files/report.html",
             f"{version}/files/confusion_matrix.png",
             f"/imagepipe/runs/{PIPELINE_DAG}/{quote(records.run(2), safe='')}"]
    viewer = stack.token_for("viewer")
    for path in pages:
        assert fetch(stack, "GET", path)[0] == 401, path
        assert fetch(stack, "GET", path, session=viewer)[0] == 200, path
    assert fetch(stack, "POST", ROLLBACK_FORM, form={"reason": "anonymous rollback"})[0] == 401


def logged_in(stack, username: str):
    """Chromium, headless, logged into the stack's Airflow UI through its login page as the user."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    missing = [program for program in ("chromium", "chromedriver") if shutil.which(program) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.implicitly_wait(0)
    try:
        driver.get(f"{stack.url}/")
        wait(driver).until(lambda d: d.find_elements(By.NAME, "username"))
        driver.find_element(By.NAME, "username").send_keys(username)
        driver.find_element(By.NAME, "password").send_keys(stack.password(username))
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(driver).until(lambda d: d.find_elements(By.LINK_TEXT, "Models"))
    except BaseException:
        driver.quit()
        raise
    return driver


@pytest.fixture(scope="module")
def browser(stack):
    """Chromium logged in as the admin."""
    driver = logged_in(stack, "admin")
    try:
        yield driver
    finally:
        driver.quit()


def open_models(driver) -> None:
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    driver.find_element(By.LINK_TEXT, "Models").click()
    enter_view(driver, "Models")


def wait(driver):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # An element found on the page a click is leaving goes stale as the next page loads: look again.
    return WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])


def enter_view(driver, heading: str) -> None:
    """Switch into the plugin view's frame once its page shows `heading`."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    wait(driver).until(lambda d: d.find_elements(By.TAG_NAME, "iframe"))
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    wait(driver).until(lambda d: heading in " ".join(element.text for element in d.find_elements(By.TAG_NAME, "h1")))


def screenshot(driver, name: str) -> None:
    driver.switch_to.default_content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def text(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(driver.find_element(By.TAG_NAME, "body").text.split())


def test_models_page_opens_from_the_navigation_bar(browser, records):
    from selenium.webdriver.common.by import By

    browser.find_element(By.LINK_TEXT, "Models").click()
    enter_view(browser, "Models")

    assert "Champion: version 1 rollback" in text(browser)
    assert "by alice: version 3 mislabels <b>forest</b> at night" in text(browser)  # shown as text
    # Verdicts, classifier names, instants and kinds stay whole on their line (not "PASSE" over "D").
    assert browser.execute_script("return document.querySelectorAll('.badge, td.nowrap').length") > 10
    assert browser.execute_script(WRAPPED_TEXT, ".badge, td.nowrap") == []
    screenshot(browser, "models")


# The texts of the elements matching a selector (arguments[0]) that the browser laid out on more than one line.
WRAPPED_TEXT = """
return [...document.querySelectorAll(arguments[0])].filter(element => {
  const range = document.createRange();
  range.selectNodeContents(element);
  return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size > 1;
}).map(element => element.textContent.trim());
"""


def test_a_versions_report_shows_its_pictures_and_gallery(browser, records):
    from selenium.webdriver.common.by import By

    enter_view(browser, "Models")
    browser.find_element(By.LINK_TEXT, "2").click()
    wait(browser).until(lambda d: "version 2" in d.find_element(By.TAG_NAME, "h1").text)

    pictures = browser.find_elements(By.CSS_SELECTOR, "img.picture")
    thumbnails = browser.find_elements(By.CSS_SELECTOR, "img.thumbnail")
    assert len(pictures) == 3 and len(thumbnails) == 11  # the charts; 5 mistakes and 2 correct images of 3 classes
    for image in pictures + thumbnails:
        wait(browser).until(lambda d, image=image: d.execute_script("return arguments[0].complete", image))
    assert min(browser.execute_script("return arguments[0].naturalWidth", image) for image in pictures) > 100
    assert {browser.execute_script("return Math.max(arguments[0].naturalWidth, arguments[0].naturalHeight)", image)
            for image in thumbnails} == {96}
    assert f"true: beach predicted: {FOREST} p = 0.90" in text(browser)
    assert "FAIL min_accuracy accuracy 0.6000 0.8000" in text(browser)
    assert "<script>alert(1)</script>" in text(browser)  # the label, as text: no script ran
    assert f'"{FOREST}"' in browser.find_element(By.TAG_NAME, "pre").text  # the metadata's labels, as written
    browser.execute_script("arguments[0].scrollIntoView()", pictures[-1])  # the confusion matrix, names on its axes
    screenshot(browser, "version")


def test_a_runs_model_run_tab_shows_its_outcome(browser, stack, records):
    from selenium.webdriver.common.by import By

    browser.switch_to.default_content()
    browser.get(f"{stack.url}/dags/{PIPELINE_DAG}/runs/{quote(records.run(2), safe='')}")
    wait(browser).until(lambda d: d.find_elements(By.LINK_TEXT, "Model run"))
    browser.find_element(By.LINK_TEXT, "Model run").click()
    enter_view(browser, f"Run {records.run(2)}")

    page = text(browser)
    assert "Quarantined: conflicting labels (2)" in page
    assert "version 2 not promoted: its gate failed" in page
    screenshot(browser, "run")


def test_a_viewer_sees_no_rollback_form_and_a_reader_of_one_dataset_sees_that_datasets_model_alone(stack, records):
    from selenium.webdriver.common.by import By

    viewer = logged_in(stack, "viewer")
    try:
        open_models(viewer)
        assert "Champion: version 1 rollback" in text(viewer)
        assert viewer.find_elements(By.CSS_SELECTOR, "form.rollback") == []  # the viewer may not trigger it
        assert "Roll back" not in [heading.text for heading in viewer.find_elements(By.TAG_NAME, "h3")]
        screenshot(viewer, "models-viewer")
    finally:
        viewer.quit()
    reader = logged_in(stack, READER)
    try:
        open_models(reader)
        assert [heading.text for heading in reader.find_elements(By.TAG_NAME, "h2")] == [DATASET]
        screenshot(reader, "models-one-dataset")
        # The default dataset's version page, asked for by its address: refused, as a page in Airflow's frame.
        reader.switch_to.default_content()
        reader.get(f"{stack.url}/imagepipe/models/image_classifier/versions/1")
        wait(reader).until(lambda d: "Not allowed" in d.find_element(By.TAG_NAME, "h1").text)
        assert "may not read image_classifier_pipeline" in text(reader) and "0.9000" not in text(reader)
        screenshot(reader, "version-not-allowed")
    finally:
        reader.quit()


def test_a_target_that_was_never_champion_is_refused_on_the_form_with_the_rollback_jobs_line(browser, stack, records):
    """The form offers former champions only; a target forced into it anyway (version 2 failed its gate) is refused
    with the line the rollback job would give, and nothing is triggered. An unknown page is an HTML page too."""
    from selenium.webdriver.common.by import By

    open_models(browser)
    form = browser.find_element(By.CSS_SELECTOR, MODEL_ROLLBACK_FORM)
    select = form.find_element(By.NAME, "target_version")
    offered = [option.get_attribute("value") for option in select.find_elements(By.TAG_NAME, "option")]
    assert "2" not in offered
    browser.execute_script("const o = document.createElement('option'); o.value = '2'; o.text = 'version 2';"
                           "arguments[0].appendChild(o); arguments[0].value = '2';", select)
    form.find_element(By.NAME, "reason").send_keys("back to the one that failed")
    form.find_element(By.TAG_NAME, "button").click()
    wait(browser).until(lambda d: "Rollback not triggered" in d.find_element(By.TAG_NAME, "h1").text)
    with pytest.raises(InputError) as refusal:  # what the rollback job says of that target
        records.registry.rollback_target(2)
    expected = str(refusal.value)
    assert expected.startswith("version 2 of image_classifier has never been champion") and expected in text(browser)
    screenshot(browser, "rollback-refused")
    assert stack.runs(ROLLBACK_DAG) == []

    browser.switch_to.default_content()
    browser.get(f"{stack.url}/imagepipe/no/such/page")
    wait(browser).until(lambda d: "Not found" in d.find_element(By.TAG_NAME, "h1").text)
    assert "no page at /imagepipe/no/such/page" in text(browser)
    browser.get(f"{stack.url}/")
    wait(browser).until(lambda d: d.find_elements(By.LINK_TEXT, "Models"))


def test_the_pages_of_every_version_and_every_champion_change_list_them_newest_first(browser, stack, records):
    from selenium.webdriver.common.by import By

    def first_cells() -> list[str]:
        return [row.find_elements(By.TAG_NAME, "td")[0].text.split()[0]
                for row in browser.find_elements(By.TAG_NAME, "tr")[1:]]

    browser.switch_to.default_content()
    browser.get(f"{stack.url}/imagepipe/models/image_classifier/versions")
    wait(browser).until(lambda d: "image_classifier: versions" in d.find_element(By.TAG_NAME, "h1").text)
    assert first_cells() == [str(version) for version in reversed(records.registry.versions())]
    assert "page 1 of 1" in text(browser)
    screenshot(browser, "versions")
    browser.get(f"{stack.url}/imagepipe/models/image_classifier/history")
    wait(browser).until(lambda d: "image_classifier: champion history" in d.find_element(By.TAG_NAME, "h1").text)
    assert first_cells() == [str(entry.sequence) for entry in reversed(records.registry.history())]
    assert "alice version 3 mislabels <b>forest</b> at night" in text(browser)  # who and why, as text
    screenshot(browser, "history")
    browser.get(f"{stack.url}/")
    wait(browser).until(lambda d: d.find_elements(By.LINK_TEXT, "Models"))


def test_a_viewer_cannot_roll_back_and_an_admins_rollback_from_the_models_page_runs_as_its_user_into_the_history(
        browser, stack, records):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert records.registry.champion_version() == 1
    status, _ = fetch(stack, "POST", ROLLBACK_FORM, session=stack.token_for("viewer"),
                      form={"reason": "a viewer tries"})
    assert status == 403
    assert stack.runs(ROLLBACK_DAG) == []

    stack.unpause(ROLLBACK_DAG)
    browser.switch_to.default_content()
    browser.find_element(By.LINK_TEXT, "Models").click()
    enter_view(browser, "Models")
    form = browser.find_element(By.CSS_SELECTOR, MODEL_ROLLBACK_FORM)
    Select(form.find_element(By.NAME, "target_version")).select_by_value("3")
    form.find_element(By.NAME, "reason").send_keys("version 1 misses the night images")
    form.find_element(By.TAG_NAME, "button").click()
    wait(browser).until(lambda d: "Rollback triggered" in d.find_element(By.TAG_NAME, "h1").text)
    assert "was triggered by admin" in text(browser)

    [run] = stack.runs(ROLLBACK_DAG)
    stack.wait_for_success(ROLLBACK_DAG, [run["dag_run_id"]], timeout=300)
    browser.find_element(By.LINK_TEXT, "Back to Models").click()
    wait(browser).until(lambda d: "Champion: version 3 rollback" in text(d))

    assert "by admin: version 1 misses the night images" in text(browser)
    screenshot(browser, "models-after-rollback")
    entry = records.registry.champion()
    assert (entry.version, entry.kind, entry.user, entry.reason) == (
        3, "rollback", "admin", "version 1 misses the night images")


def test_the_pipelines_trigger_form_refuses_a_source_the_ingest_job_refuses_with_the_jobs_message(browser, stack):
    """Airflow's own trigger form, built from the params' schemas: a timm backbone is found by typing part of its
    name; a source that is not an S3 prefix is refused on Trigger with the message the job gives for it, and no run
    is created (nor the DAG unpaused)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from imagepipe import params
    from imagepipe.run_param import schema_error

    runs_before = len(stack.runs(PIPELINE_DAG))
    browser.switch_to.default_content()
    browser.get(f"{stack.url}/dags/{PIPELINE_DAG}")
    wait(browser).until(lambda d: d.find_elements(By.XPATH, "//button[normalize-space()='Trigger']"))
    browser.find_element(By.XPATH, "//button[normalize-space()='Trigger']").click()
    wait(browser).until(lambda d: d.find_elements(By.NAME, "element_source_uri"))
    unpause = browser.find_element(By.XPATH, "//*[@role='dialog']//input[@type='checkbox']")
    if unpause.is_selected():  # "Unpause on trigger": the DAG stays paused, as the other tests need it
        browser.find_element(By.XPATH, "//*[@role='dialog']//label[contains(., 'on trigger')]").click()
    # The backbone field offers thousands of timm models: typing filters them, and one is chosen from the list.
    backbone = browser.find_element(By.ID, "element_backbone")
    browser.execute_script("arguments[0].scrollIntoView()", backbone)
    backbone.find_element(By.XPATH, ".//input[@role='combobox']").send_keys("efficientnet_lite0")
    lite0 = ".//*[@role='option' and normalize-space()='timm:tf_efficientnet_lite0']"
    wait(browser).until(lambda d: backbone.find_elements(By.XPATH, lite0))
    options = backbone.find_elements(By.XPATH, ".//*[@role='option']")
    offered = [option.get_attribute("textContent") for option in options]
    assert offered and all("efficientnet_lite0" in option for option in offered), offered
    screenshot(browser, "trigger-form-backbone")
    backbone.find_element(By.XPATH, lite0).click()
    assert backbone.text.strip() == "timm:tf_efficientnet_lite0"
    source = browser.find_element(By.NAME, "element_source_uri")
    source.send_keys(Keys.CONTROL, "a")
    source.send_keys("http://my-photos/holiday/")
    browser.find_element(By.XPATH, "//*[@role='dialog']//button[normalize-space()='Trigger']").click()

    refusal = schema_error("http://my-photos/holiday/", params.SOURCE_URI.schema)  # the job's line
    message = f"Invalid input for param source_uri: {refusal}"
    wait(browser).until(lambda d: message in text(d))
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(
        By.XPATH, "//*[@role='dialog']//*[contains(text(), 'Invalid input for param')]"))
    screenshot(browser, "trigger-form-refusal")
    assert len(stack.runs(PIPELINE_DAG)) == runs_before
    assert stack.request("GET", f"/api/v2/dags/{PIPELINE_DAG}")["is_paused"] is True
