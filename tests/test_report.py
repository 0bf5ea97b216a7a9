from practicum.report import Section, new_figure, save_figure, write_report


def test_report_embeds_figures_and_escapes_text(tmp_path):
    fig, ax = new_figure()
    ax.plot([1, 2], [3, 4])
    png = save_figure(fig, tmp_path / "fig.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = write_report(tmp_path / "report.html", "T <1>", [
        Section("S", ["a & b"], [[{"method": "x", "acc": 0.91234}]], [png, tmp_path / "missing.png"])])
    text = out.read_text()
    assert "T &lt;1&gt;" in text and "a &amp; b" in text and "0.9123" in text
    assert "data:image/png;base64," in text and "missing.png is missing" in text
