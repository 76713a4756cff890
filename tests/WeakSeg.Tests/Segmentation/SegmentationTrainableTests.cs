using TorchSharp;
using WeakSeg.Segmentation;
using WeakSeg.Training;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SegmentationTrainableTests
{
    [Fact]
    public void Clip_warmup_disables_the_mask_before_its_last_step_only()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(8);
        // τ = 100: λ_global (≈ ln 4 at initialisation) is always ≤ τ, so the paper's rule clips from step 0
        var config = SegmentationTestData.Tiny() with { ClipStartValue = 100, ClipWarmupSteps = 3 };
        using var model = new SegmenterModel(config);
        var trainable = new SegmentationTrainable(model);
        var images = torch.randn(2, 3, 32, 32);
        var masks = torch.randint(0, 4, new long[] { 2, 32, 32 }, dtype: torch.int64);
        float Part(LossTerms t, string name) => t.Parts.Single(p => p.Name == name).Value.item<float>();
        foreach (var (step, clipping) in new[] { (0L, false), (2L, false), (3L, true), (10L, true) })
        {
            var terms = trainable.ComputeLoss(new TrainBatch(images, torch.zeros(2, 3), masks), new TrainStepContext(step, 20, 0.1, new Random(1)));
            Assert.Equal(clipping ? 1f : 0f, Part(terms, "clipping"));
            if (clipping)
            {
                Assert.True(Part(terms, "kept") < 1f);
                Assert.True(terms.Total.item<float>() < Part(terms, "ce"));   // the highest-CE pixels were dropped
            }
            else
            {
                Assert.Equal(1f, Part(terms, "kept"));
                Assert.Equal(Part(terms, "ce"), terms.Total.item<float>(), 5);
            }
        }
        var e = Assert.Throws<WeakSegException>(() => (config with { ClipWarmupSteps = -1 }).EnsureValid());
        Assert.Contains("ClipWarmupSteps must be ≥ 0", e.Message);
    }
}
