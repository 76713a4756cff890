using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

public class LearningRateScheduleTests
{
    [Fact]
    public void Warmup_is_linear_from_start_and_cosine_decays_to_min_by_hand()
    {
        // T = 10, W = 4, base 1.0, min 0.1, start 0.0.
        // warm-up: s/4 → 0, .25, .5, .75; cosine over T−W = 6 steps: 0.1 + 0.45·(1 + cos(π (s−4)/6))
        var lr = new LearningRateSchedule(10, baseLr: 1.0, minLr: 0.1, warmupSteps: 4, warmupStartLr: 0.0);
        double[] expected =
        [
            0.0, 0.25, 0.5, 0.75,
            1.0,                     // s=4: cos 0 = 1
            0.1 + 0.45 * (1 + 0.8660254037844387),   // s=5: cos(π/6)
            0.1 + 0.45 * (1 + 0.5),                  // s=6: cos(π/3)
            0.55,                                    // s=7: cos(π/2) = 0
            0.1 + 0.45 * (1 - 0.5),                  // s=8
            0.1 + 0.45 * (1 - 0.8660254037844387),   // s=9 → 0.16029 (min 0.1 is the limit at s = T)
        ];
        Assert.Equal(10, lr.Values.Count);
        for (int s = 0; s < 10; s++) Assert.Equal(expected[s], lr[s], 12);
    }

    [Fact]
    public void Warmup_start_lr_and_no_warmup_cases()
    {
        // start 0.2 → base 1.0 over W = 2: 0.2, 0.6, then cosine from 1.0
        Assert.Equal(0.2, LearningRateSchedule.At(0, 6, 1.0, 0.0, 2, 0.2), 12);
        Assert.Equal(0.6, LearningRateSchedule.At(1, 6, 1.0, 0.0, 2, 0.2), 12);
        Assert.Equal(1.0, LearningRateSchedule.At(2, 6, 1.0, 0.0, 2, 0.2), 12);
        Assert.Equal(0.5, LearningRateSchedule.At(4, 6, 1.0, 0.0, 2, 0.2), 12); // t = 2/4 → cos(π/2) = 0 → 0.5
        // W = 0: step 0 is already the peak
        Assert.Equal(3e-4, LearningRateSchedule.At(0, 100, 3e-4, 1e-6, 0, 0), 15);
        // monotone decreasing after warm-up
        var lr = new LearningRateSchedule(50, 1e-3, 1e-5, 5, 1e-6);
        for (int s = 6; s < 50; s++) Assert.True(lr[s] < lr[s - 1]);
    }
}
