<AutoPilot:project xmlns:AutoPilot="com.autoesl.autopilot.project" projectType="C/C++" name="det_prj" top="det">
    <solutions>
        <solution name="solution1" status=""/>
    </solutions>
</AutoPilot:project>
