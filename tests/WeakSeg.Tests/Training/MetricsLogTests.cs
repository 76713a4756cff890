using System.Text.Json;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

public class MetricsLogTests
{
    static StepReport Report(long step, float loss) =>
        new(step, 10, loss, [new LossPart("cls", loss * 0.5f), new LossPart("reg", 0.25f)], 1e-4 * step, 2.5, 4, step * 0.5);

    [Fact]
    public void Lines_hold_step_loss_parts_lr_and_resume_drops_later_and_broken_lines()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("metrics.jsonl");
        using (var log = MetricsLog.Create(path))
            for (int s = 1; s <= 5; s++) log.Append(Report(s, s * 0.1f), 8.0);
        File.AppendAllText(path, "{\"step\":6,\"loss\":0.6"); // half-written line from a crash

        var first = JsonDocument.Parse(File.ReadLines(path).First()).RootElement;
        Assert.Equal(1, first.GetProperty("step").GetInt64());
        Assert.Equal(0.1f, first.GetProperty("loss").GetSingle());
        Assert.Equal(0.05f, first.GetProperty("parts").GetProperty("cls").GetSingle());
        Assert.Equal(0.25f, first.GetProperty("parts").GetProperty("reg").GetSingle());
        Assert.Equal(1e-4, first.GetProperty("lr").GetDouble(), 15);
        Assert.Equal(2.5, first.GetProperty("grad_norm").GetDouble());
        Assert.Equal(0.5, first.GetProperty("seconds").GetDouble());
        Assert.Equal(8.0, first.GetProperty("images_per_s").GetDouble());

        using (var log = MetricsLog.ResumeAfter(path, 3)) log.Append(Report(4, 9f), 1.0);
        var steps = File.ReadLines(path).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(new long[] { 1, 2, 3, 4 }, steps.Select(e => e.GetProperty("step").GetInt64()).ToArray());
        Assert.Equal(9f, steps[3].GetProperty("loss").GetSingle());
    }
}
