using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Pipelines;
using WeakSeg.Refinement;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

/// <summary>The one evaluation of a map folder behind `weakseg eval-cam` and the pipeline's cam-eval stage.</summary>
public class CamEvaluationTests
{
    /// <summary>The tiny 3-class dataset and a map of every train image: plane of the image's first class, a ramp over the pixels.</summary>
    static (string Data, string Maps) MapsOnTinyData(TempDir dir)
    {
        var data = PipelineTestData.MakeData(dir.File("data"));
        var maps = dir.File("maps");
        foreach (var sample in VocDataset.Open(data, "train").Samples)
        {
            var image = ImageCodec.Load(sample.ImagePath);
            int h = image.Height, w = image.Width, c = sample.Classes.Length > 0 ? sample.Classes[0] : 1;
            var plane = Enumerable.Range(0, h * w).Select(i => (float)((i * 7 + c * 13) % 101) / 100f).ToArray();
            CamMapFile.Write(maps, sample.Name, plane, [c], h, w);
        }
        return (data, maps);
    }

    [Fact]
    public void Sweep_artifact_rate_json_and_comparison_come_from_one_call()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, maps) = MapsOnTinyData(dir);
        var sweepOptions = new CamSweepOptions { Thresholds = [0.1, 0.3, 0.5, 0.7], MaxParallelism = 2 };
        var json = dir.File("eval/eval-cam.json");
        var result = CamEvaluation.Run(new CamEvaluationRequest
        {
            MapsDirectory = maps, DataRoot = data, Split = "train", Sweep = sweepOptions, EvaluationPath = json,
            Crf = DenseCrfConfig.Psa, RandomWalkMaps = maps,
        });

        var sweep = CamThresholdSweep.Evaluate(maps, data, "train", sweepOptions);
        Assert.Equal(sweep.Metrics.Select(m => m.MeanIou), result.Sweep.Metrics.Select(m => m.MeanIou));
        var (_, artifacts) = CamThresholdSweep.EvaluateWithArtifactRate(maps, data, "train", sweepOptions with { MaxParallelism = 1 });
        Assert.Equal(artifacts.Rate, result.Artifacts.Rate, 12);                               // workers add their sums in any order
        Assert.True(result.Artifacts.Pairs > 0);

        var written = JsonFiles.ReadObject(json);
        Assert.Equal(result.Sweep.BestMeanIou, written["best_miou"]!.GetValue<double>());
        Assert.Equal(result.Artifacts.Rate, written["artifact_rate"]!.GetValue<double>());
        Assert.Equal(4, written["miou_by_threshold"]!.AsObject().Count);
        Assert.Equal(Path.ChangeExtension(json, ".png"), result.PlotPath);
        Assert.True(File.Exists(result.PlotPath));

        Assert.Equal(["maps", "maps + CRF", "random walk", "random walk + CRF"], result.Comparison.Select(r => r.Variant));
        var crf = CrfMapEvaluation.Evaluate(maps, data, "train", new CrfMapOptions { Threshold = (float)sweep.BestThreshold, Crf = DenseCrfConfig.Psa }).MeanIou;
        Assert.Equal([sweep.BestMeanIou, crf, sweep.BestMeanIou, crf], result.Comparison.Select(r => r.MeanIou));   // the same folder twice
        Assert.All(result.Comparison, r => Assert.Equal(sweep.BestThreshold, r.Threshold));
    }

    [Fact]
    public void Without_a_file_or_a_comparison_it_writes_nothing_and_compares_nothing()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, maps) = MapsOnTinyData(dir);
        var before = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories).Length;
        var result = CamEvaluation.Run(new CamEvaluationRequest { MapsDirectory = maps, DataRoot = data, Split = "train" });
        Assert.Empty(result.Comparison);
        Assert.Null(result.PlotPath);
        Assert.Equal(before, Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories).Length);
        Assert.Equal(new CamSweepOptions().Thresholds.Count, result.Sweep.Thresholds.Count);
    }
}
